"""HTTP endpoint families, one module each; ``responses`` holds what they share."""
