"""Runnable framework examples: a Flask app and a Django project using the producer API."""
