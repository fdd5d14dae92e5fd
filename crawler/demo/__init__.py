"""The fixture site: every source's real formats served from a loopback port, for the demo and the tests."""

from crawler.demo.site import FixtureSite, RunningSite, generate_listings, load_demo_listings, serve

__all__ = ["FixtureSite", "RunningSite", "generate_listings", "load_demo_listings", "serve"]
