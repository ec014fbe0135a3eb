"""The controlled world: real-fact tables, fictional name generators, familiarity, seeding.

Everything here is a pure function of its arguments (seeds included); nothing touches torch.
"""

from lorareuse_plugin.world.facts import CountedObject, Country, Person, real_facts
from lorareuse_plugin.world.familiarity import Familiarity
from lorareuse_plugin.world.names import FictionalNamer

__all__ = ["CountedObject", "Country", "FictionalNamer", "Familiarity", "Person", "real_facts"]
