"""What goes out: feeds (one module per format), pages, AMP, JSON-LD, oEmbed, sitemaps.

Pure functions of articles and the store's queries; nothing here imports Flask.
"""
