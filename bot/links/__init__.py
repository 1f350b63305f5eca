"""Songs from links: the egress guard every link connection goes through, and the fetchers.

A link is an instruction to make the server fetch something, so every connection made
for one passes through :class:`bot.links.proxy.EgressProxy`, which refuses internal
addresses (issue 25). Nothing here knows a chat platform or the process.
"""
