"""The leaderboard: the baseline ladder over libraries and seeds -> JSON, CSV, Markdown, PNG, gap."""
