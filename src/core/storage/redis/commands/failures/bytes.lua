-- bytes: replies what the failures held hold.
return held_bytes()
