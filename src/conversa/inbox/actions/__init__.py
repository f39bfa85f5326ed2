"""The writes of the conversation domain, one module per job (docs/decisions.md #31).

Every public function here is an action: one verb, one transaction, keyword-only typed arguments
(ids as ints; request data is parsed by the API serializers and console forms before), events
published on commit through `realtime.publish`, audit rows through `inbox.audit`.

- `inbound`: a customer's message arrives (conversation opened or joined, out of hours), its media.
- `menu`: the interactive menu's state machine and its timeouts.
- `delivery`: send claims, results and delivery statuses (forward only).
- `replies`: what an agent sends (text, quick reply, template, file) and marking a thread read.
- `assignment`: capture, transfer, automatic distribution and handing chats to a freed agent.
- `supervision`: a supervisor joining an agent's conversation to write in it.
- `closing`: closing by an agent (disposition form) and `close_by_system` for everything else.
- `expiry`: marking conversations expired (window closed unanswered) and reactivating them.
- `outbound`: an agent starts a conversation with a template.
- `contacts`: identifying a conversation's customer, editing a contact.
- `common`: what several jobs share (the lock on an owned conversation, queuing a message).
"""
