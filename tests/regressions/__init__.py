"""One test per reported fault, named for the behaviour that was wrong."""
