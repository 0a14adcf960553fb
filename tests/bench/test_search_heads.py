import numpy as np

from bench.search_heads import components_fit


def test_the_components_are_the_samples_directions_of_most_variance_largest_first() -> None:
    rng = np.random.default_rng(7)
    spread = np.array([1.0, 5.0, 0.1, 3.0])  # axis 1 varies most, then 3, then 0
    vectors = rng.normal(size=(2_000, 4)) * spread

    components = components_fit(vectors, dimensions=2, rows=1_000, seed=1)

    assert components.shape == (4, 2)
    assert components.dtype == np.float32
    np.testing.assert_allclose(np.abs(components[:, 0]), [0, 1, 0, 0], atol=0.05)
    np.testing.assert_allclose(np.abs(components[:, 1]), [0, 0, 0, 1], atol=0.05)
    np.testing.assert_allclose(components.T @ components, np.eye(2), atol=1e-5)
