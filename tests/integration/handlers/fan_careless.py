"""Consumers of the work queue that do not run a Pipes session for their items: ``plain`` is deployed
without the kit's Lambda side (it returns, and the event source mapping deletes the messages);
``unopened`` runs behind the kit's entrypoint but never opens the session it is given."""


def plain(event, _context):
    return {"records": len(event.get("Records", []))}


def unopened(event, _context):
    return {"ignored": event.get("pipeskit_item")}
