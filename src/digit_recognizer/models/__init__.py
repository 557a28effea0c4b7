"""Models: architectures as frozen configs (`net`) and the one model-file format and loader (`modelfile`)."""
