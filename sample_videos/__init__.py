"""The bundled sample clips, installed as `vidpipe.sample_videos`: the quickstart's input and the frames the
int8 model is calibrated on (`vidpipe.detectors.quantize`)."""
