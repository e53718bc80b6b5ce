"""alertbot: posts changes in Token Metrics trading signals and grades to chats."""

__version__ = "0.1.0"
