from vidtt.cli.main import main

raise SystemExit(main())
