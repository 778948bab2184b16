"""Platform adapters: each turns platform events into Invocations and renders Replies."""
