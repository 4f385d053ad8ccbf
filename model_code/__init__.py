"""Model side: code/ ships in model.tar.gz; tiny_shapes/ is the bundled demo CLIP and its trainer."""
