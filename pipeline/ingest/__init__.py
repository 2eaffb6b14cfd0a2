"""Ingest: drops from the landing directory into the staging store.

``receive`` finds drops and archives their files; ``screening`` is the de-identification screen;
``drops`` takes each drop through parsing (pipeline/sources), the screen, validation
(pipeline/validation) and the store's write (pipeline/store) to one recorded state.
"""
