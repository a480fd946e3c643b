"""Alert subscriptions: models here (registered in the clusters app), logic in clusters/domain/alerts.py and
clusters/services/alerts.py, API in clusters/api/alerts.py."""
