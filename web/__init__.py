"""The Quart-Trio front end: the app factory (``app``), Blueprints by audience (``routes``) and,
beneath them, dependencies, use cases, answer shapes and the generated OpenAPI document.
"""
