"""The read path without a worker: the statement check on ClickHouse's own parse, a read-only session of its own per
query (never the ingest client's), its limits, and the endpoint file a worker publishes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra import read_endpoint, sql_check
from infra.errors import QueryRefused, ReadUnavailable
from infra.reader import ReadLimits, one_line, read_embedded
from infra.settings import SqlSettings

LIMITS = ReadLimits.of(SqlSettings(max_execution_s=5, max_memory_mb=128, max_result_rows=1000, max_result_mb=4))


@pytest.fixture
def folder(chdb_settings, chdb_client) -> Path:
    """The session's chDB folder (one engine per process), opened by the ingest client already."""
    return Path(chdb_settings.resolved_dsn().removeprefix("chdb://"))


# Each row: a query, and a fragment of its one-line refusal (None: it runs).
CATALOGUE = [
    ("SELECT 1", None),
    ("WITH 2 AS x SELECT x", None),
    ("SELECT number FROM numbers(3) UNION ALL SELECT 4", None),
    ("SELECT * FROM (SELECT 1) INTERSECT SELECT 1", None),
    ("SELECT * FROM view(SELECT 1)", None),
    ("SHOW TABLES FROM system LIKE 'one'", None),
    ("DESCRIBE TABLE system.one", None),
    ("EXPLAIN SELECT 1", None),
    ("EXPLAIN PLAN header = 1 SELECT 1", None),
    ("SELECT 1;", None),
    ("SELECT 'x' INTO OUTFILE '{tmp}/written.txt'", "INTO OUTFILE"),
    ("SELECT 'x' INTO OUTFILE '{tmp}/written.txt' APPEND", "INTO OUTFILE"),
    ("SHOW TABLES INTO OUTFILE '{tmp}/written.txt'", "INTO OUTFILE"),
    ("DESCRIBE TABLE system.one INTO OUTFILE '{tmp}/written.txt'", "INTO OUTFILE"),
    ("EXPLAIN SELECT 1 INTO OUTFILE '{tmp}/written.txt'", "INTO OUTFILE"),
    ("SELECT 1; SELECT 2", "Multi-statements are not allowed"),
    ("SELECT 1; DROP TABLE system.one", "Multi-statements are not allowed"),
    ("SELECT 1 /* unterminated", "Multiline comment is not closed"),
    ("INSERT INTO system.one VALUES (1)", "this is an INSERT"),
    ("INSERT INTO system.one SELECT 1", "this is an INSERT"),
    ("DROP TABLE system.one", "this is a DROP"),
    ("SET readonly = 0", "this is a SET"),
    ("SYSTEM SHUTDOWN", "this is a SYSTEM"),
    ("EXPLAIN INSERT INTO system.one VALUES (1)", "EXPLAIN of a statement that is not a read"),
    ("SELECT 1 SETTINGS max_execution_time = 0", "SETTINGS"),
    ("SELECT 1 UNION ALL (SELECT 2 SETTINGS max_memory_usage = 0)", "SETTINGS"),
    ("DESCRIBE TABLE system.one SETTINGS describe_include_subcolumns = 1", "readonly"),  # the engine refuses it
    ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "table function file()"),
    ("SELECT * FROM url('http://127.0.0.1:1/', 'CSV')", "table function url()"),
    ("SELECT * FROM s3('http://127.0.0.1:1/x.csv')", "table function s3()"),
    ("SELECT * FROM remote('127.0.0.1', system.one)", "table function remote()"),
    ("SELECT * FROM mysql('h:3306', 'd', 't', 'u', 'p')", "table function mysql()"),
    ("SELECT * FROM postgresql('h:5432', 'd', 't', 'u', 'p')", "table function postgresql()"),
    ("SELECT * FROM input('x UInt8')", "table function input()"),
    ("SELECT * FROM executable('x.sh', TSV, 'a UInt8')", "table function executable()"),
    ("SELECT * FROM merge('system', '^one$')", "table function merge()"),
    ("SELECT 1 FROM system.one WHERE 1 IN (SELECT * FROM hdfs('hdfs://h/x', 'CSV'))", "table function hdfs()"),
    ("DESCRIBE TABLE url('http://127.0.0.1:1/', 'CSV')", "table function url()"),
    ("SELECT file('/etc/hostname')", "function file() reads files"),
    ("SELECT 1 FORMAT JSON", "FORMAT"),
    ("", "no query"),
]


@pytest.mark.parametrize("query, refusal", CATALOGUE)
def test_the_catalogue(folder: Path, tmp_path: Path, query: str, refusal: str | None) -> None:
    query = query.replace("{tmp}", str(tmp_path))
    if refusal is None:
        assert read_embedded(folder, query, LIMITS).columns
        return
    with pytest.raises(QueryRefused) as refused:
        read_embedded(folder, query, LIMITS)
    message = str(refused.value)
    assert refusal in message and "\n" not in message and "parseQueryToJSON" not in message
    assert not (tmp_path / "written.txt").exists()


@pytest.mark.parametrize("query, limit", [
    ("SELECT count() FROM numbers(1000000000) AS a CROSS JOIN numbers(1000000000) AS b", "MEMORY_LIMIT_EXCEEDED"),
    ("SELECT number FROM numbers(100000)", "TOO_MANY_ROWS_OR_BYTES"),
    ("SELECT count() FROM numbers(100000000000) WHERE NOT ignore(sipHash64(number))", "TIMEOUT_EXCEEDED"),
])
def test_each_limit_ends_a_query_with_a_one_line_error(folder: Path, query: str, limit: str) -> None:
    with pytest.raises(QueryRefused, match=limit):
        read_embedded(folder, query, ReadLimits.of(SqlSettings(max_execution_s=1, max_memory_mb=128, max_result_rows=1000)))


def test_a_refused_query_leaves_the_ingest_client_writable(folder: Path, chdb_client, database: str,
                                                           tmp_path: Path) -> None:
    """The old /sql ran on the sink's client with readonly as a session setting: a refused INSERT left that session
    readonly and the next insert of the worker failed (READONLY), so it stopped. Now each query has its own."""
    for query, refusal in CATALOGUE:
        try:
            read_embedded(folder, query.replace("{tmp}", str(tmp_path)), LIMITS)
        except QueryRefused:
            pass
    chdb_client.command(f"INSERT INTO `{database}`.frames (charge_point_id, raw) VALUES ('CP-1', 'still written')")
    assert chdb_client.query(f"SELECT count() FROM `{database}`.frames").result_rows == [(1,)]
    assert chdb_client.query("SELECT getSetting('readonly')").result_rows == [(0,)]


def test_results_are_json_values(folder: Path) -> None:
    result = read_embedded(folder, "SELECT toUInt64(18446744073709551615) AS big, toDateTime64('2026-07-01 08:00:00', "
                                   "3, 'UTC') AS at, [1, 2] AS list, NULL AS nothing, 'x' AS text", LIMITS)
    assert result.columns == ["big", "at", "list", "nothing", "text"]
    assert result.rows == [[18446744073709551615, "2026-07-01T08:00:00.000Z", [1, 2], None, "x"]]


def test_a_database_never_migrated_is_a_one_line_refusal(folder: Path) -> None:
    with pytest.raises(ReadUnavailable, match="never migrated: start the worker or run `ocpp-pipeline db migrate`"):
        read_embedded(folder, "SELECT 1", LIMITS, database="never_migrated")


def test_errors_are_one_line() -> None:
    raw = ("Code: 62. DB::Exception: Syntax error (Multi-statements are not allowed): failed at position 9 (end of "
           "query): ; SELECT 2. : In scope SELECT parseQueryToJSON('SELECT 1; SELECT 2'). (SYNTAX_ERROR) (version 26.9)")
    assert one_line(raw) == ("Syntax error (Multi-statements are not allowed): failed at position 9 (end of query): ; "
                             "SELECT 2. (SYNTAX_ERROR)")


# --- the rules, on trees the real parser made -------------------------------------------------------------------

READ_PARTS = ["SELECT a FROM t", "SELECT * FROM numbers(3)", "SELECT x FROM (SELECT 1 AS x)", "SELECT count() FROM t GROUP BY a",
              "SELECT 1 FROM t WHERE a IN (SELECT b FROM u)"]
BAD_PARTS = {"file": "SELECT * FROM file('x')", "url": "SELECT * FROM url('http://h/')", "settings": "SELECT 1 SETTINGS max_threads = 1",
             "read file": "SELECT file('x')", "remote": "SELECT * FROM remote('h', t)"}


def parse(chdb_client, text: str) -> dict:
    return json.loads(chdb_client.query("SELECT parseQueryToJSON({q:String})", parameters={"q": text}).result_rows[0][0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(READ_PARTS), min_size=1, max_size=3), st.one_of(st.none(), st.sampled_from(sorted(BAD_PARTS))),
       st.integers(0, 3), st.sampled_from(["union", "subquery", "join", "cte"]))
def test_a_refused_part_is_found_wherever_it_is_nested(chdb_client, reads, bad, where, how) -> None:
    parts = list(reads)
    if bad is not None:
        parts.insert(min(where, len(parts)), BAD_PARTS[bad])
    if how == "union":
        text = " UNION ALL ".join(f"({p})" for p in parts)
    elif how == "subquery":
        text = "SELECT * FROM " + "".join(f"(SELECT * FROM ({p}) UNION ALL " for p in parts[:-1]) + f"({parts[-1]})" + ")" * (len(parts) - 1)
    elif how == "join":
        text = "SELECT * FROM " + ", ".join(f"({p}) AS s{i}" for i, p in enumerate(parts))
    else:
        text = "WITH " + ", ".join(f"c{i} AS ({p})" for i, p in enumerate(parts)) + " SELECT * FROM c0"
    ast = parse(chdb_client, text)
    if bad is None:
        sql_check.check_ast(ast)
    else:
        with pytest.raises(QueryRefused):
            sql_check.check_ast(ast)


def test_the_tree_of_a_statement_without_a_json_form_is_read_by_indentation() -> None:
    tree = sql_check.parse_tree("DescribeQuery (children 1)\n TableExpression (children 1)\n  TableIdentifier system.one\n")
    assert (tree.kind, [c.kind for c in tree.children], tree.children[0].children[0].name) == (
        "DescribeQuery", ["TableExpression"], "system.one")
    with pytest.raises(QueryRefused, match="more than one statement"):
        sql_check.parse_tree("DescribeQuery\nDescribeQuery\n")


# --- the endpoint file ---------------------------------------------------------------------------------------


def endpoint(folder: Path, pid: int, started: int | None) -> read_endpoint.Endpoint:
    return read_endpoint.Endpoint("127.0.0.1", 6067, str(folder), "ocpp", pid, started, "secret")


def test_the_endpoint_file_is_owner_only_and_round_trips(tmp_path: Path) -> None:
    mine = endpoint(tmp_path, os.getpid(), read_endpoint.process_started(os.getpid()))
    (tmp_path / read_endpoint.FILE_NAME).write_text("{}")
    os.chmod(tmp_path / read_endpoint.FILE_NAME, 0o644)  # an older file: the new one is owner-only anyway
    path = read_endpoint.publish(tmp_path, mine)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_endpoint.read(tmp_path) == mine and read_endpoint.alive(mine)
    read_endpoint.withdraw(tmp_path, os.getpid() + 1)  # not its own: left alone
    assert path.exists()
    read_endpoint.withdraw(tmp_path, os.getpid())
    assert not path.exists() and read_endpoint.read(tmp_path) is None


def test_a_killed_workers_file_is_detected_as_stale(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not read_endpoint.alive(endpoint(tmp_path, gone.pid, None))  # the process is gone
    reused = endpoint(tmp_path, os.getpid(), (read_endpoint.process_started(os.getpid()) or 0) + 1)
    assert not read_endpoint.alive(reused)  # the pid now belongs to another process


@pytest.mark.parametrize("content, message", [("not json", "cannot be read"), ('{"v": 1, "who": 1}', "not an endpoint file")])
def test_a_broken_endpoint_file_is_a_one_line_refusal(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / read_endpoint.FILE_NAME).write_text(content)
    with pytest.raises(ReadUnavailable, match=message):
        read_endpoint.read(tmp_path)
