"""Several nodes as one site: the internal pull (an edge or relay following an upstream hub)."""
