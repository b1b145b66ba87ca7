"""Corpus readers, `mmae prepare`, and the `tf.data` input pipeline.

`readers` needs no TensorFlow; `prepare` and `pipeline` do.
"""
