"""Chart rendering adapter (Pillow), imported only when a chart is drawn."""
