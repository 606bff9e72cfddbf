"""The workflow service: every port-in request, its numbers' lifecycle, and its timers."""
