"""The bot's own web server: health now; dashboard, API and Slack endpoint later."""
