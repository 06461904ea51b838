"""The shipped studies: one thin script per figure (``simsam list`` shows them, ``simsam run NAME``
runs one). Installed with the package; nothing in simsam imports them, the loader reads them by
file (:func:`simsam.experiment.load`)."""
