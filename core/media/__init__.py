"""Media: URLs and downloads, images, one way to sample a video, the frame cache, contact sheets,
and the decode layer samplers choose frames over (`vidtt.media.decode`)."""
