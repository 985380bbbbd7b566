"""Container entry point (`CMD ["python3", "app.py"]`); the logic lives in deepseek_launcher."""

from deepseek_launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
