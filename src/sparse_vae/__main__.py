from sparse_vae.cli import main

raise SystemExit(main())
