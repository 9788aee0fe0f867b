from physrep.cli import main

raise SystemExit(main())
