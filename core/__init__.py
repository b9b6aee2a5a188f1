"""The shared core of Citizen Helpdesk: settings, database, models, deployment, web app
and the ``helpdesk`` CLI. The subsystem packages (``bot``, ``scheduler``, ``audio``) sit
beside it and build on it.
"""
