"""The Discord front end: the bot class, the command tree and its one error path, job cards,
buttons, wording of refusals, and delivery through Discord. The slash commands themselves are
the cogs in `cogs/`. Only this package and `cogs/` import `discord`."""
