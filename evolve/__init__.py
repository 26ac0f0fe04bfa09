"""evolve: improve small GPT programs by evolution, with honest sandboxed evaluation."""

__version__ = "0.1.0"
