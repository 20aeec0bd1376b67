from ocpp_pipeline.cli import main

raise SystemExit(main())
