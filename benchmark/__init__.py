"""i2v-bench: how well do image-pretrained encoders transfer to video, and which transfer method wins."""
__version__ = "0.1.0"
