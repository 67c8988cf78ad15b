"""vidtt's built-in embedders (entry points in the `vidtt` group): `clip`, frames and texts as
vectors of one space with transformers' CLIP and SigLIP families."""
