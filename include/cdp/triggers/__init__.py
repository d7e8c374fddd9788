"""Actions triggered by what lands in the warehouse: migration phase 3's course completion triggers."""
