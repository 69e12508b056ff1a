"""The alignment commands (`assistant align`, `eval answers`, `bench align|train`), registered by name in
`assistant.cli.COMMANDS` so the core never imports this package."""
