"""Notifications: config (config/notify.yaml), the outbox in the store, and the Apprise sender."""
