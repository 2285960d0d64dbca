"""The load engine: dispatch arithmetic (pure), the asyncio runner and the run verdict."""
