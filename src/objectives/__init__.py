"""objectives: train every model by an explicit, composable objective.

J(θ) = Σ_i w_i · L_i(outputs) + Σ_j λ_j · R_j(θ), made of named terms that Hydra
composes and TensorBoard shows one by one. Importing the package has no side effects.
"""

__version__ = "0.1.0"
