"""A minimal Faust app for tests/test_faust_roundtrip.py: an agent reads a topic, keeps a running
total per key in a changelog-backed table and produces the new total to another topic.
Run as ``python -m tests.faust_roundtrip_app worker``; names come from the environment the
test sets."""

import os

import faust

app = faust.App(
    os.environ["RT_APP_ID"],
    broker=f"kafka://{os.environ['RT_BOOTSTRAP']}",
    store="memory://",
    datadir=os.environ["RT_DATADIR"],
    topic_partitions=2,
    topic_replication_factor=1,
    web_enabled=False,
)
source = app.topic(os.environ["RT_SOURCE"], value_serializer="json", key_serializer="raw", partitions=2)
sink = app.topic(os.environ["RT_SINK"], value_serializer="json", key_serializer="raw", partitions=2)
totals = app.Table("totals", default=int, partitions=2)


@app.agent(source)
async def accumulate(stream):
    async for key, value in stream.items():
        name = key.decode()
        totals[name] += int(value["wh"])
        await sink.send(key=key, value={"charge_point_id": name, "total_wh": totals[name], "seq": value["seq"]})


if __name__ == "__main__":
    app.main()
