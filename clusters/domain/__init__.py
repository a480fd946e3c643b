"""dbpilot's domain core: plain Python, no Django, Celery, Channels or PyMySQL imports."""
