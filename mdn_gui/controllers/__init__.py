"""Controllers: the writers of the document; Qt objects, but no widgets."""
