from hitl.cli.main import app

app()
