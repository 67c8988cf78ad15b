from vidtt.cli.app import main

raise SystemExit(main())
