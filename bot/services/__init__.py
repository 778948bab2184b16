"""Application services: what the cogs, the dashboard and delivery share above the core rules.

The dependency bundle handed to every command handler (``deps``), and the services built on the
store and the catalog: stand-ins for a failing service, the crowd watch, admin-added services.
"""
