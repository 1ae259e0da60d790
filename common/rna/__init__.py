"""RNAcompete: the course format, download, simulator and calibration, the Q2 models and their fit."""
