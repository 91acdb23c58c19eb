-- bound: replies the stored {maxPerService, maxServices, maxBytes}.
return stored
