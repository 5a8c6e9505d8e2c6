from hitl.cli.entry import main

main()
