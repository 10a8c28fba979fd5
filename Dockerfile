# One image for every role (worker, beat, webhook, flower); the command picks the role.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatcher ./dispatcher
COPY workers ./workers
COPY config ./config
RUN pip install --no-cache-dir . && useradd --create-home sms
USER sms
ENV SMSD_DATA_DIR=/tmp/smsd PYTHONUNBUFFERED=1
CMD ["celery", "-A", "dispatcher.workers", "worker", "-Q", "sms.otp,sms.bulk", "-l", "INFO"]
