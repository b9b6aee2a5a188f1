"""The conversation engine (surveys and issue reports) and the chat channels it speaks on.

Data flow: a channel turns a platform update into an :class:`bot.messages.Incoming`, the
:class:`bot.engine.Engine` moves the CFA's saved conversation one step and answers with
:class:`bot.messages.Reply` objects, and the channel renders them for its platform.
"""
