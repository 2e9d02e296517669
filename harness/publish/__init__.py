"""What people read: the audit report (Markdown, HTML, JSON, plots) and the leaderboard."""
