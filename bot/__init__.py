"""A Discord bot that turns prompts and images into Vidu videos within moderated quotas."""
